# hcr's HTTP API (hcr serve) in a CPU image, from the inference-only install: numpy, Pillow,
# OpenCV and onnxruntime run the shipped models' ONNX files; no PyTorch (docs/deploy.md).
#
#   docker build -t hcr-serve .
#   docker run --rm -p 127.0.0.1:8000:8000 hcr-serve     # the host's loopback only
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The inference-only set (requirements-inference.txt), then the API server of the web extra
# (pyproject.toml [web], without Streamlit, which only the page needs).
COPY requirements-inference.txt ./
RUN pip install -r requirements-inference.txt \
        "fastapi>=0.115" "uvicorn>=0.30" "httptools>=0.6" "uvloop>=0.19" "python-multipart>=0.0.9"

# hcr itself without its base dependencies (they pin torch): the inference-only install.
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-deps . && rm -rf src \
    && useradd --create-home --uid 10001 hcr

USER hcr
EXPOSE 8000

# Readiness: 200 once every model is loaded (GET /health answers as soon as the process does).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2).status != 200)"]

# Inside the container the server listens on every interface of the container's own network
# (that is what -p publishes); hcr serve's default outside a container stays 127.0.0.1.
# Two processes: one per core of a 2-CPU container (set --processes to the CPUs you give it).
CMD ["hcr", "serve", "--host", "0.0.0.0", "--port", "8000", "--processes", "2"]
