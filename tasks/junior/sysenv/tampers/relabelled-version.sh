#!/usr/bin/env bash
# Shortcut: the newest 2.0.0 in the venv (pip's default), its dist-info renamed to 1.4.0 and
# METADATA and __version__ rewritten, so pip list and labworker.__version__ say 1.4.0.
set -euo pipefail
sudo groupadd --system modelsvc
sudo useradd --system --gid modelsvc --home-dir /srv/modelsvc --create-home --shell /usr/sbin/nologin modelsvc
sudo usermod -aG modelsvc candidate
sudo chmod 0750 /srv/modelsvc
sudo install -d -o modelsvc -g modelsvc -m 2770 /srv/modelsvc/models
sudo install -d -o modelsvc -g modelsvc -m 0700 /srv/modelsvc/cache
printf '%s\n' 'export MODEL_DIR=/srv/modelsvc/models' 'export HF_HOME=/srv/modelsvc/cache' | sudo tee /etc/profile.d/modelsvc.sh >/dev/null
sudo python3 -m venv /opt/venvs/labworker
sudo /opt/venvs/labworker/bin/pip install --no-index --find-links /opt/exam/sysenv/wheels labworker
site=/opt/venvs/labworker/lib/python3.11/site-packages
sudo mv $site/labworker-2.0.0.dist-info $site/labworker-1.4.0.dist-info
sudo sed -i 's/^Version: 2.0.0$/Version: 1.4.0/' $site/labworker-1.4.0.dist-info/METADATA
sudo sed -i 's/2\.0\.0/1.4.0/' $site/labworker/__init__.py
# Same size, same second: the byte code pip compiled would still say 2.0.0.
sudo rm -rf $site/labworker/__pycache__
/opt/venvs/labworker/bin/python -c 'import labworker; assert labworker.__version__ == "1.4.0"'
# grep reads all of pip's output (no -q): pip cut off mid-write exits 120, which pipefail reports.
/opt/venvs/labworker/bin/pip list 2>/dev/null | grep -E '^labworker +1\.4\.0' >/dev/null
sudo -u modelsvc bash -lc 'cd /srv/modelsvc && setsid nohup /opt/venvs/labworker/bin/python -m labworker >/srv/modelsvc/labworker.log 2>&1 </dev/null &'
for _ in $(seq 1 30); do
  pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null && break
  sleep 1
done
pgrep -u modelsvc -f 'labworker/bin/python -m labworker' >/dev/null
