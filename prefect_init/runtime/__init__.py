"""What a running step works with: its context (deadline, logger, outputs), atomic writes, redaction of secrets,
values read from the environment or a file, structured documents, and what a probe (``check --online``) answers.

Step kinds import this layer; it imports only the spec below it. No prefect here.
"""
