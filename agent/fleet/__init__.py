"""A fleet rotation sliced over Celery workers on Redis (``--executor celery``)."""
