"""soil: progress, status and downloads for any Celery task.

    from soil import DownloadBase
    DownloadBase.set_progress(my_task, current, total)
"""
from .downloads import BlobDownload, CachedDownload, DownloadBase, FileDownload, MultipleTaskDownload

__all__ = ["DownloadBase", "CachedDownload", "FileDownload", "BlobDownload", "MultipleTaskDownload"]
