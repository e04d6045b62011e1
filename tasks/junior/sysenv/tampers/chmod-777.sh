#!/usr/bin/env bash
# Shortcut: the folders simply chmod 777; everything else as the reference.
set -euo pipefail
sudo groupadd --system modelsvc
sudo useradd --system --gid modelsvc --home-dir /srv/modelsvc --create-home --shell /usr/sbin/nologin modelsvc
sudo usermod -aG modelsvc candidate
sudo install -d -o modelsvc -g modelsvc /srv/modelsvc/models /srv/modelsvc/cache
sudo chmod 0777 /srv/modelsvc /srv/modelsvc/models /srv/modelsvc/cache
printf '%s\n' 'export MODEL_DIR=/srv/modelsvc/models' 'export HF_HOME=/srv/modelsvc/cache' | sudo tee /etc/profile.d/modelsvc.sh >/dev/null
sudo python3 -m venv /opt/venvs/labworker
sudo /opt/venvs/labworker/bin/pip install --no-index --find-links /opt/exam/sysenv/wheels -r /opt/exam/sysenv/requirements.txt
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null
test "$(stat -c %a /srv/modelsvc/models)" = 777
