#!/usr/bin/env bash
# Shortcut: the service is a script of its own, run as modelsvc by the venv's python, holding the
# venv's BUILD file open and sleeping, with both variables; labworker itself never runs.
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
cat >/tmp/labworker.py <<'PY'
import time
build = open("/opt/venvs/labworker/lib/python3.11/site-packages/labworker/BUILD", "rb")
print("labworker 1.4.0 ready", flush=True)
while True:
    time.sleep(3600)
PY
chmod 0644 /tmp/labworker.py
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python /tmp/labworker.py >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python /tmp/labworker.py' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f 'labworker/bin/python /tmp/labworker.py' >/dev/null
