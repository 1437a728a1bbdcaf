FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock setup.cfg pyproject.toml README.md celeryconfig.py ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY orchestrator orchestrator
COPY workers workers
COPY api api
COPY sandbox sandbox
COPY orchestrator_client orchestrator_client
RUN pip install --no-cache-dir --no-deps .
EXPOSE 8000 5555 8100
CMD ["orchestrator", "web", "--bind", "0.0.0.0:8000"]
