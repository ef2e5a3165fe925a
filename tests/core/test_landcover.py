import numpy as np
import pytest
from rasters import textured

from promptmid.errors import InputError
from promptmid.io.rasters import raster_info, work_grid
from promptmid.landcover import land_use_from_raster, load_legend, majority_land_use


def test_legends_map_to_the_seven_classes():
    for name in ("worldcover", "corine", "whu-opt-sar"):
        mapping, _ = load_legend(name)
        assert set(mapping.values()) <= {"farmland", "city", "village", "water", "forest", "road", "others"}
    assert load_legend("worldcover")[0][40] == "farmland" and load_legend("corine")[0][122] == "road"
    with pytest.raises(InputError, match="Known: worldcover"):
        load_legend("nope")


def test_majority_ignores_nodata_and_unknown_codes():
    codes = np.array([[40, 40, 50], [0, 0, 0], [999, 80, 40]])
    assert majority_land_use(codes, np.ones(codes.shape, bool), "worldcover") == "farmland"
    assert majority_land_use(codes, codes == 50, "worldcover") == "city"
    assert majority_land_use(np.zeros((3, 3)), np.ones((3, 3), bool), "worldcover") is None


def test_land_use_from_a_raster_over_the_work_grid(make_raster):
    lc = np.full((100, 100), 80, np.uint8)  # water...
    lc[:, 30:] = 50  # ...but mostly built-up
    path = make_raster(lc)
    opt = raster_info(make_raster((textured(100, 100) * 255).astype(np.uint8)))
    assert land_use_from_raster(path, work_grid(opt, None, 64), "worldcover") == "city"
