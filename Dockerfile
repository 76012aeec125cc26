# Hugging Face Space (Docker SDK). The setup is the README's own: `make setup` installs the same pins and runs
# the same --no-deps asset step; the app then starts as in `make app`, listening on all interfaces.
FROM python:3.11-slim

# make runs the setup (g++ and CMake compile llama.cpp); Debian's Fashion-MNIST becomes the bundled fashion-mnist-5k
# dataset.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make g++ cmake dataset-fashion-mnist flite pocketsphinx-testdata tuxpaint-stamps-default \
    && rm -rf /var/lib/apt/lists/*

# Spaces run containers as user 1000; so does this image, whatever the host.
RUN useradd --create-home --uid 1000 user
USER user
# A Space is shared by strangers: each browser session keeps its runs and uploads to itself (removed after a day
# unused), training is capped per run, and the data folder is kept under 30 GB (least recently used cache entries
# go first; a Space's disk is 50 GB). An operator may set these in the Space's settings (PRIVATE_SESSIONS=0:
# one shared store). The data folder is /data/microbudget where the Space's persistent storage is on (results and
# caches survive a restart), else /home/user/.cache/microbudget (wiped at each restart); MICROBUDGET_HOME overrides.
ENV HOME=/home/user \
    MICROBUDGET_PRIVATE_SESSIONS=1 \
    MICROBUDGET_MAX_EPOCHS=5 \
    MICROBUDGET_MAX_EXAMPLES_PER_CLASS=1000 \
    MICROBUDGET_MAX_GB=30 \
    PYTHONUNBUFFERED=1
WORKDIR /home/user/app

# Requirements first: the virtualenv layer is rebuilt only when they change.
# llama.cpp is built portably (tools/build_llamacpp.sh: GGML_NATIVE=OFF), so the image runs on any x86-64 CPU with AVX2.
COPY --chown=user Makefile requirements.txt requirements-assets.txt requirements-llamacpp.txt ./
COPY --chown=user tools ./tools
RUN make setup PYTHON=python3.11
COPY --chown=user . .

EXPOSE 8501
CMD [".venv/bin/python", "-m", "streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
