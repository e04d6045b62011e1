#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user (sudo granted by the task).
set -euo pipefail
# A system group and user for the service, the candidate in its group.
sudo groupadd --system modelsvc
sudo useradd --system --gid modelsvc --home-dir /srv/modelsvc --create-home --shell /usr/sbin/nologin modelsvc
sudo usermod -aG modelsvc candidate
# Its folders with the stated modes.
sudo chmod 0750 /srv/modelsvc
sudo install -d -o modelsvc -g modelsvc -m 2770 /srv/modelsvc/models
sudo install -d -o modelsvc -g modelsvc -m 0700 /srv/modelsvc/cache
# System-wide variables for every login shell.
printf '%s\n' 'export MODEL_DIR=/srv/modelsvc/models' 'export HF_HOME=/srv/modelsvc/cache' | sudo tee /etc/profile.d/modelsvc.sh >/dev/null
sudo chmod 0644 /etc/profile.d/modelsvc.sh
# The venv by the document: pinned requirements from the offline wheelhouse.
sudo python3 -m venv /opt/venvs/labworker
sudo /opt/venvs/labworker/bin/pip install --no-index --find-links /opt/exam/sysenv/wheels -r /opt/exam/sysenv/requirements.txt
/opt/venvs/labworker/bin/python -c 'import labworker; assert labworker.__version__ == "1.4.0"'
if python3 -c 'import labworker' 2>/dev/null; then echo "system python imports labworker" >&2; exit 1; fi
# The service as modelsvc, from a login shell (so it carries the system-wide variables).
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null && sudo grep -q 'labworker 1.4.0' /srv/modelsvc/labworker.log && exit 0
  sleep 1
done
echo "labworker did not start" >&2
exit 1
