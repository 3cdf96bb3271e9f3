#!/bin/bash
# Processing-job entrypoint: `entrypoint.sh SCRIPT.py [ARGS...]`.
# Installs the scripts' requirements when the bundle ships them (the framework image
# lacks mlflow), then runs the script from the downloaded scripts directory. Training
# jobs do not use this file: the SageMaker training toolkit installs requirements.txt.
set -euo pipefail
scripts_dir="${MLOPS_SCRIPTS_DIR:-/opt/ml/processing/input/scripts}"
script="$1"
shift
if [ -f "$scripts_dir/requirements.txt" ] && [ "${MLOPS_SKIP_REQUIREMENTS:-0}" != "1" ]; then
  python3 -m pip install --quiet --disable-pip-version-check -r "$scripts_dir/requirements.txt"
fi
exec python3 "$scripts_dir/$script" "$@"
