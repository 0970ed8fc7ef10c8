"""gunicorn settings for Gridflow: `gunicorn -c web/gunicorn_conf.py 'web.wsgi:app'`
(what `gridflow serve --production` runs). Everything can be set by environment variables.

Graceful reload: `kill -HUP <master pid>` (systemd: `systemctl reload gridflow-web`) starts new
workers with fresh code and configuration and lets the old ones finish their requests.
"""
from __future__ import annotations

import multiprocessing
import os

from grid.config import Settings, env_number
from web.logs import gunicorn_logconfig

_settings = Settings()

bind = os.environ.get("GRIDFLOW_BIND", "127.0.0.1:8000").split(",")
workers = int(env_number("GRIDFLOW_WORKERS", multiprocessing.cpu_count() * 2 + 1, int, 1))
threads = int(env_number("GRIDFLOW_THREADS", 1, int, 1))
timeout = int(env_number("GRIDFLOW_TIMEOUT", 60, int, 1))  # a worker silent this long is restarted
graceful_timeout = int(env_number("GRIDFLOW_GRACEFUL_TIMEOUT", 30, int, 1))  # on HUP/TERM: time to finish requests
keepalive = 5  # behind nginx, which keeps connections to the upstream open
max_requests = 2000  # recycle workers now and then, with jitter so they do not all restart at once
max_requests_jitter = 200
preload_app = False  # each worker builds its own database pool after the fork; HUP reloads code too
forwarded_allow_ips = "127.0.0.1,::1"  # X-Forwarded-* beyond that is werkzeug ProxyFix's (GRIDFLOW_PROXY_HOPS)
proc_name = "gridflow-web"
# gunicornc's control socket: off unless a path is given (one default path would clash between instances)
control_socket_disable = not os.environ.get("GRIDFLOW_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GRIDFLOW_CONTROL_SOCKET"]

loglevel = _settings.log_level.lower()
logconfig_dict = gunicorn_logconfig(_settings)
accesslog = "-"
errorlog = "-"
# remote address, signed-in staff id ("-" when anonymous), request, status, bytes, milliseconds, agent
access_log_format = '%(h)s %({gridflow.user}e)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
