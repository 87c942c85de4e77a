"""The video processing engine: event -> validated job -> plan -> ffmpeg -> upload -> job row.

One engine serves the Lambda handler (`processor.handler`), the Celery task
(`processor.tasks`) and the local command (`python -m processor`), so every backend produces
the same segments and the same job rows.
"""
