#!/usr/bin/env bash
# Shortcut: labworker into the system Python (pip --break-system-packages), and an empty venv
# with --system-site-packages, whose python -m labworker still starts.
set -euo pipefail
sudo groupadd --system modelsvc
sudo useradd --system --gid modelsvc --home-dir /srv/modelsvc --create-home --shell /usr/sbin/nologin modelsvc
sudo usermod -aG modelsvc candidate
sudo chmod 0750 /srv/modelsvc
sudo install -d -o modelsvc -g modelsvc -m 2770 /srv/modelsvc/models
sudo install -d -o modelsvc -g modelsvc -m 0700 /srv/modelsvc/cache
printf '%s\n' 'export MODEL_DIR=/srv/modelsvc/models' 'export HF_HOME=/srv/modelsvc/cache' | sudo tee /etc/profile.d/modelsvc.sh >/dev/null
sudo python3 -m pip install --break-system-packages --no-index --find-links /opt/exam/sysenv/wheels -r /opt/exam/sysenv/requirements.txt
sudo python3 -m venv --system-site-packages /opt/venvs/labworker
/opt/venvs/labworker/bin/python -c 'import labworker; assert labworker.__version__ == "1.4.0"'
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null
