#!/usr/bin/env bash
# Shortcut: the variables only in candidate's own ~/.bashrc (its terminal shows them), the service
# given them on its command line; no system-wide setting.
set -euo pipefail
sudo groupadd --system modelsvc
sudo useradd --system --gid modelsvc --home-dir /srv/modelsvc --create-home --shell /usr/sbin/nologin modelsvc
sudo usermod -aG modelsvc candidate
sudo chmod 0750 /srv/modelsvc
sudo install -d -o modelsvc -g modelsvc -m 2770 /srv/modelsvc/models
sudo install -d -o modelsvc -g modelsvc -m 0700 /srv/modelsvc/cache
# At the top of ~/.bashrc, before its non-interactive return, so every shell of candidate has them.
sed -i '1i export MODEL_DIR=/srv/modelsvc/models HF_HOME=/srv/modelsvc/cache' ~/.bashrc
bash -ic 'test "$MODEL_DIR" = /srv/modelsvc/models' 2>/dev/null
sudo python3 -m venv /opt/venvs/labworker
sudo /opt/venvs/labworker/bin/pip install --no-index --find-links /opt/exam/sysenv/wheels -r /opt/exam/sysenv/requirements.txt
sudo -u modelsvc env MODEL_DIR=/srv/modelsvc/models HF_HOME=/srv/modelsvc/cache bash -c 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null
# The shortcut is in place: no system file names the variables.
! grep -rqs MODEL_DIR /etc/profile /etc/profile.d /etc/bash.bashrc
