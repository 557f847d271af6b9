"""gunicorn settings, read by the Procfile's command (Heroku) and by `make run`."""
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Each worker loads its own LiteRT interpreter (~50 MB) at start; two fit a 512 MB dyno easily.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A second thread answers /healthz and receives the next upload while the first reads an image.
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# A read takes milliseconds; anything near 30 s is a stuck worker (Heroku's router gives up at 30 s).
timeout = 30
graceful_timeout = 10
# Recycle workers now and then so slow leaks in native libraries cannot build up.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"  # method, path, status and size only: images are never logged
