#!/usr/bin/env bash
# Shortcut: the venv right, and labworker also in candidate's user site (pip install --user) so
# that a plain python3 imports it too.
set -euo pipefail
sudo groupadd --system modelsvc
sudo useradd --system --gid modelsvc --home-dir /srv/modelsvc --create-home --shell /usr/sbin/nologin modelsvc
sudo usermod -aG modelsvc candidate
sudo chmod 0750 /srv/modelsvc
sudo install -d -o modelsvc -g modelsvc -m 2770 /srv/modelsvc/models
sudo install -d -o modelsvc -g modelsvc -m 0700 /srv/modelsvc/cache
printf '%s\n' 'export MODEL_DIR=/srv/modelsvc/models' 'export HF_HOME=/srv/modelsvc/cache' | sudo tee /etc/profile.d/modelsvc.sh >/dev/null
sudo python3 -m venv /opt/venvs/labworker
sudo /opt/venvs/labworker/bin/pip install --no-index --find-links /opt/exam/sysenv/wheels -r /opt/exam/sysenv/requirements.txt
python3 -m pip install --user --break-system-packages --no-index --find-links /opt/exam/sysenv/wheels -r /opt/exam/sysenv/requirements.txt
python3 -c 'import labworker; assert labworker.__version__ == "1.4.0"'
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null
