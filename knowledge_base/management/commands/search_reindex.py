"""`manage.py search_reindex [--doc-type article|ticket]`: rebuild the search index from the database, in bulk.

Database backend: each document type is rebuilt in one transaction (searches see the old entries until it
commits), with text segmented on one process per core. Elasticsearch: a new index is filled and the alias
moved to it atomically. Changes written meanwhile are kept (outbox, ticket cursor). Progress goes to stderr:
a bar on a terminal, plain lines otherwise.
"""

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge_base import search
from knowledge_base.search import documents
from knowledge_base.search.progress import ProgressBar


class Command(BaseCommand):
    help = "从数据库批量重建检索索引（知识库文章和工单），显示进度；重建期间的写入不会丢失。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--doc-type",
            action="append",
            choices=search.DocType.values,
            help="只重建该类型（可重复；默认全部）",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        doc_types = options["doc_type"] or list(search.DocType.values)
        backend = search.backend_name()
        bars: dict[str, ProgressBar] = {}
        # The bar redraws with carriage returns, which Django's wrapper would end with a newline each.
        stream = cast(TextIO, self.stderr._out)

        def progress(doc_type: str, done: int) -> None:
            bars[doc_type].advance(done)

        counts: dict[str, int] = {}
        for doc_type in doc_types:
            bars[doc_type] = ProgressBar(
                label=f"{doc_type} ({backend})", total=documents.count(doc_type), stream=stream
            )
            try:
                counts.update(search.reindex(doc_types=[doc_type], progress=progress))
            except search.SearchUnavailable as error:
                raise CommandError(f"{error.message}（{doc_type}，{backend}）") from error
            finally:
                bars[doc_type].close()
        summary = ", ".join(f"{doc_type}: {count}" for doc_type, count in counts.items())
        self.stdout.write(f"重建完成（{backend}）：{summary}")
