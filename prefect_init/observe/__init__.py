"""Prefect mode as an observer: the steps run in this process by the same engine as local mode, and what happens
is mirrored into the Prefect API (flow run, a task run per step with its retries, logs, the artifact, heartbeat
events) from one background thread, over plain HTTP, with bounded timeouts. When the API is slow, gone or
refusing, the mirror stops and the steps run on: the exit code is always the steps'.
"""
