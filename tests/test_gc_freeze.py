"""The objects cache, once parsed, is kept out of the cyclic collector's full collections (at a million objects
each would stall the loop for a quarter of a second); a file re-read every few seconds is not."""

from __future__ import annotations

import gc
from pathlib import Path

from bridge.engine.files import EngineFiles


async def test_a_parsed_objects_cache_is_frozen_and_status_dat_is_not(tmp_path: Path) -> None:
    cache, status = tmp_path / "objects.cache", tmp_path / "status.dat"
    cache.write_text("define host {\n\thost_name\tweb1\n\t}\n")
    status.write_text("hoststatus {\n\thost_name=web1\n\t}\n")
    files = EngineFiles(cache, status)
    gc.unfreeze()
    try:
        assert (await files.status()) is not None
        assert gc.get_freeze_count() == 0
        known = await files.objects()
        assert known is not None and set(known.hosts) == {"web1"}
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
