"""Tables of the search index: the database backend's entries, the outbox of changes still to index, the
ticket-event cursor, and Elasticsearch rebuilds in progress.

The full-text structures themselves are created by migration `0002_search` for the database in use: an FTS5
table kept in step with `SearchEntry` by triggers on SQLite, a generated tsvector column with a GIN index on
PostgreSQL (which is why `title_terms` and `text_terms` must not be altered by a later migration without
dropping and recreating that column).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .types import DocType


class SearchEntry(models.Model):
    """One document of the database backend: what is shown (title, text without personal data), the
    segmented words that are matched, and the fields searches filter on. Derived data: rebuilt at will."""

    doc_type = models.CharField(max_length=16, choices=DocType.choices)
    doc_id = models.BigIntegerField()
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    title_terms = models.TextField(blank=True)
    text_terms = models.TextField(blank=True)
    kind = models.CharField(max_length=32, blank=True)
    audience = models.CharField(max_length=16)
    status = models.CharField(max_length=32, blank=True)
    # Plain ids, not foreign keys: the index never holds a row of its source in place.
    category_id = models.BigIntegerField(null=True, blank=True)
    top_category_id = models.BigIntegerField(null=True, blank=True)
    region_id = models.BigIntegerField(null=True, blank=True)
    department_id = models.BigIntegerField(null=True, blank=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField()
    indexed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("检索索引条目")
        verbose_name_plural = _("检索索引条目")
        constraints = [models.UniqueConstraint(fields=["doc_type", "doc_id"], name="search_entry_unique_doc")]
        # No index on the filter columns: filters always come with a text match, and an index on them only
        # tempts PostgreSQL's planner away from the GIN index.

    def __str__(self) -> str:
        return f"{self.doc_type}:{self.doc_id}"


class SearchOutbox(models.Model):
    """A document whose index entry must be brought up to date: written in the transaction that changed
    it, deleted once the index has the change. Processing reads the document's current state, so several
    rows for one document, or one for a document deleted since, come to the same result."""

    doc_type = models.CharField(max_length=16, choices=DocType.choices)
    doc_id = models.BigIntegerField()
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("待索引变更")
        verbose_name_plural = _("待索引变更")
        ordering = ["id"]
        indexes = [models.Index(fields=["next_attempt_at", "id"], name="search_outbox_due")]

    def __str__(self) -> str:
        return f"{self.doc_type}:{self.doc_id} ({self.attempts})"


class SearchCursor(models.Model):
    """How far the index has followed an append-only log (the ticketing app's TicketEvent ids).

    `recent` maps the ids already handled within the grace window below `last_event_id` to their time:
    PostgreSQL takes ids at insert, so a slower transaction can commit a smaller id after a larger one was
    read, and those ids are looked at again (and the ones in `recent` skipped)."""

    name = models.CharField(max_length=32, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    recent = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("索引进度")
        verbose_name_plural = _("索引进度")

    def __str__(self) -> str:
        return f"{self.name}: {self.last_event_id}"


class SearchIndexBuild(models.Model):
    """An Elasticsearch index being built by `search_reindex` for a document type: while it exists every
    index update also goes to the new index, so nothing written during the rebuild is missing after the
    alias moves to it."""

    doc_type = models.CharField(max_length=16, choices=DocType.choices, unique=True)
    index_name = models.CharField(max_length=200)
    started_at = models.DateTimeField()

    class Meta:
        verbose_name = _("索引重建")
        verbose_name_plural = _("索引重建")

    def __str__(self) -> str:
        return f"{self.doc_type} -> {self.index_name}"
