# The CLMS Updates image (both roles; CLMS_ROLE chooses). Built by the vendor's CI.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CLMS_VAR_DIR=/var/lib/clms-updates
RUN apt-get update \
 && apt-get install -y --no-install-recommends gnupg postgresql-client zstd skopeo \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "clms_updates.asgi:application"]
