"""Where a model was trained: the versions a pickled scikit-learn model depends on.

A model pickled by one scikit-learn minor version may not load in another, or loads and
misbehaves (a ColumnTransformer pickled by 1.6.1 fails in 1.4.2 with "Can't get attribute
'_RemainderColsList'": amazon-sagemaker-examples#3935; scikit-learn's docs, "Model
persistence", warn against it). Train writes `training_environment.json` beside
model.joblib (and the same as MLflow tags); the serving code refuses a model of another
scikit-learn minor version by name instead of failing in pickle.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

__all__ = ["ENVIRONMENT_FILE", "TAG_PREFIX", "current", "mismatch", "refusal", "write"]

# MLflow tags of the model's run: `mlops.trained_with.<package>` = its version
TAG_PREFIX = "mlops.trained_with."

ENVIRONMENT_FILE = "training_environment.json"


def current() -> dict[str, str]:
    """{"python", "scikit-learn", "numpy", "pandas"}: the versions running now."""
    import numpy
    import pandas
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "pandas": pandas.__version__}  # fmt: skip


def write(model_dir: Path) -> dict[str, str]:
    versions = current()
    (model_dir / ENVIRONMENT_FILE).write_text(json.dumps(versions, indent=2))
    return versions


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def mismatch(trained: str, running: str) -> str:
    """'' when a model trained with scikit-learn `trained` may be loaded under `running`
    (same minor version, or `trained` unknown); else why not, naming both."""
    if not trained or _minor(trained) == _minor(running):
        return ""
    return (
        f"the model was trained with scikit-learn {trained} and this environment runs {running}: a pickled "
        f"model loads only under the scikit-learn minor version that trained it ({_minor(trained)}); retrain "
        f"it here, or serve it in an image with scikit-learn {_minor(trained)}"
    )


def refusal(model_dir: Path) -> str:
    """'' when the model may be loaded here (same scikit-learn minor version, or a model
    from before this file existed); else why not, naming both versions."""
    path = Path(model_dir) / ENVIRONMENT_FILE
    if not path.exists():
        return ""
    return mismatch(json.loads(path.read_text()).get("scikit-learn", ""), current()["scikit-learn"])
