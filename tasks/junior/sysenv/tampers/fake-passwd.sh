#!/usr/bin/env bash
# Shortcut: no user tools; account lines appended by hand (uid/gid 1500, outside the system
# range, no shadow entries), the home made with mkdir. The rest as the reference.
set -euo pipefail
echo 'modelsvc:x:1500:1500::/srv/modelsvc:/usr/sbin/nologin' | sudo tee -a /etc/passwd >/dev/null
echo 'modelsvc:x:1500:candidate' | sudo tee -a /etc/group >/dev/null
sudo install -d -o 1500 -g 1500 -m 0750 /srv/modelsvc
sudo install -d -o 1500 -g 1500 -m 2770 /srv/modelsvc/models
sudo install -d -o 1500 -g 1500 -m 0700 /srv/modelsvc/cache
# The account works: names resolve and sudo can switch to it.
test "$(id -u modelsvc)" = 1500 && id -nG candidate | grep -qw modelsvc
! sudo grep -q '^modelsvc:' /etc/shadow
printf '%s\n' 'export MODEL_DIR=/srv/modelsvc/models' 'export HF_HOME=/srv/modelsvc/cache' | sudo tee /etc/profile.d/modelsvc.sh >/dev/null
sudo python3 -m venv /opt/venvs/labworker
sudo /opt/venvs/labworker/bin/pip install --no-index --find-links /opt/exam/sysenv/wheels -r /opt/exam/sysenv/requirements.txt
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null
