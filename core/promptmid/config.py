"""All engine settings in one dataclass tree; CLI flags and plugin settings override fields of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .descriptors.classical import ClassicalConfig
from .geometry.fit import FitConfig
from .io.normalize import OpticalNormConfig, SarNormConfig
from .keypoints.pcfast import PCFastConfig
from .keypoints.phase_congruency import PhaseCongruencyConfig
from .matching import MatchConfig
from .dense.cfog import CfogConfig
from .guided import GuidedConfig
from .search import SearchConfig
from .verdict import VerdictConfig, georef_verdict

LAND_USE_CLASSES = ("farmland", "city", "village", "water", "forest", "road", "others")
WARP_TRANSFORMS = ("similarity", "affine", "poly2", "tps")


@dataclass
class TilingConfig:
    """Large scenes: full-resolution tiles around the coarse solution (see tiling.py)."""

    mode: str = "auto"  # auto: tile when the work grid is coarser than the fine grid by > auto_factor; on | off
    auto_factor: float = 2.0
    tile: int = 512  # tile side on the fine grid, pixels (what one small pair is matched at)
    fine_factor: float = 1.0  # fine grid pixel = optical pixel times this (>1 matches slightly coarser, faster)
    max_tiles: int = 30  # tiles matched at most, spread evenly over the overlap (time scales with it)
    min_valid_fraction: float = 0.5  # skip windows mostly outside either raster (or nodata)
    min_tile_inliers: int = 8
    min_confirming_tiles: int = 3  # registered tiles agreeing on one transform make the scene registered
    tile_descriptors: bool = False  # descriptor matches in the tiles too (slower; templates alone by default)
    merge_threshold_px: float = 4.0  # fine-grid px: tile GCPs further than this from the merged affine are dropped
    cache_mb: int = 256  # GDAL block cache while tiling (bounds memory on huge inputs)


@dataclass
class EngineConfig:
    engine: str = "default"  # see descriptors.registry: default (= dense, shipped), dense, lite, promptmid, classical, area, sift
    model_dir: Optional[str] = None  # foundation weights for the full engine ($PROMPTMID_MODEL_DIR if None)
    weights: Optional[str] = None  # checkpoint override for a learned engine (default, dense, lite)
    device: str = "auto"  # auto | cpu | cuda
    land_use: Optional[str] = None  # one of LAND_USE_CLASSES; used by prompt-conditioned engines
    land_cover: Optional[str] = None  # land-cover raster: majority class over the overlap, when land_use is None
    land_cover_legend: str = "worldcover"  # worldcover | corine | whu-opt-sar | path to a legend JSON
    max_side: int = 512  # longer side of the work grid, pixels: larger rasters are matched downsampled
    # (averaging also tames SAR speckle; the fit over many tie points stays sub-pixel at full resolution)
    sar_norm: SarNormConfig = field(default_factory=SarNormConfig)
    optical_norm: OpticalNormConfig = field(default_factory=OpticalNormConfig)
    pc: PhaseCongruencyConfig = field(default_factory=PhaseCongruencyConfig)
    keypoints: PCFastConfig = field(default_factory=PCFastConfig)
    classical: ClassicalConfig = field(default_factory=ClassicalConfig)
    matching: MatchConfig = field(default_factory=MatchConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    dense: CfogConfig = field(default_factory=CfogConfig)  # dense maps for the global search and templates
    search: SearchConfig = field(default_factory=SearchConfig)
    guided: GuidedConfig = field(default_factory=GuidedConfig)
    verdict: VerdictConfig = field(default_factory=VerdictConfig)  # after a full search
    verdict_georef: VerdictConfig = field(default_factory=georef_verdict)  # after a search near the georeference
    accept_uncertain: bool = False  # write outputs of an uncertain result (the report says so) instead of refusing
    sar_band: str = "1"  # SAR band to match: "1".."N", or "mean" (mean intensity of all bands)
    tiling: TilingConfig = field(default_factory=TilingConfig)


@dataclass
class OutputConfig:
    # Warp model: similarity (what the engine fits: rotation, scale, shift of the SAR as placed on the optical
    # grid; geometry/similarity.py) | affine (polynomial 1 through the GCPs) | poly2 | tps
    transform: str = "similarity"
    resampling: str = "bilinear"  # GDAL resampling for the warped SAR
    output_grid: str = "optical"  # "optical": same pixel size/extent as the optical raster; "native": GDAL's choice
    max_gcps: int = 400  # spread subset of inliers written as GCPs (TPS cost grows with N^2)
    # .points source columns: auto = layer coordinates for a SAR with a geotransform, else pixels with y down
    # (what the Georeferencer of QGIS >= 3.22.4 reads; checked in 3.22.16 by `make gui-check`) | pixel | layer
    qgis_points_source: str = "auto"
