"""The market service (``market-server``): node directory, route planner, jobs, Celery tasks, dashboard.

Never imports ``node`` or torch.
"""
