"""Real robot data in and out of the interchange ``.npz`` (``hybridsim._src.io``).

::

    import hybridsim as hs
    from hybridsim import data, residual

    scene = hs.load_scene("arm2")
    imported = data.import_dataset("my_lerobot_dataset/", scene)   # LeRobot v3, robomimic
    data.write_imported(imported, "train.npz")                     # HDF5 or hybridsim .npz
    print("\\n".join(imported.report.lines()))
    fitted = residual.fit(scene, residual.episodes_from(imported.arrays),
                          residual.FitConfig(), out_dir="runs/arm2")

    data.export_lerobot("rollouts.npz", scene, "my_export/",
                        data.ExportConfig(camera="main", width=160, height=120))
    data.validate_lerobot("my_export/")

The CLI: ``hybridsim data import`` and ``hybridsim data export`` (see docs/data_import.md
and docs/data_export.md). Needs the ``data`` extra (pyarrow, h5py, PyAV).
"""

from hybridsim._src.datasets.importer import (
    ImportConfig,
    Imported,
    ImportReport,
    import_dataset,
    write_imported,
)
from hybridsim._src.datasets.lerobot_schema import validate_lerobot
from hybridsim._src.datasets.lerobot_write import ExportConfig, export_lerobot
from hybridsim._src.datasets.names import actuator_names, qpos_names, qvel_names
from hybridsim._src.datasets.timing import Timing, choose_timing
from hybridsim._src.datasets.velocity import estimate_qvel

__all__ = [
    "ExportConfig",
    "ImportConfig",
    "ImportReport",
    "Imported",
    "Timing",
    "actuator_names",
    "choose_timing",
    "estimate_qvel",
    "export_lerobot",
    "import_dataset",
    "qpos_names",
    "qvel_names",
    "validate_lerobot",
    "write_imported",
]
