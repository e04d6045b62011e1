#!/usr/bin/env bash
# Alternative: uid/gid 950 given, the home made by hand; the variables appended to /etc/profile
# (login shells) and /etc/bash.bashrc; a --copies venv, pip through its python; the service from
# a shell that sourced the venv's activate (argv[0] is a bare python found through PATH).
set -euo pipefail
sudo groupadd -r -g 950 modelsvc
sudo useradd -r -u 950 -g 950 -M -d /srv/modelsvc -s /usr/sbin/nologin modelsvc
sudo gpasswd -a candidate modelsvc >/dev/null
sudo mkdir -p /srv/modelsvc/models /srv/modelsvc/cache
sudo chown -R modelsvc:modelsvc /srv/modelsvc
sudo chmod 750 /srv/modelsvc && sudo chmod 2770 /srv/modelsvc/models && sudo chmod 700 /srv/modelsvc/cache
printf '\n%s\n' 'MODEL_DIR=/srv/modelsvc/models; HF_HOME=/srv/modelsvc/cache; export MODEL_DIR HF_HOME' | sudo tee -a /etc/profile /etc/bash.bashrc >/dev/null
sudo python3 -m venv --copies /opt/venvs/labworker
sudo /opt/venvs/labworker/bin/python -m pip install --no-index --find-links /opt/exam/sysenv/wheels 'labworker==1.4.0'
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && . /opt/venvs/labworker/bin/activate && setsid nohup python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f '^python -m labworker' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f '^python -m labworker' >/dev/null
