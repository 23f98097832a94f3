"""`manage.py open311_key create NAME | list | revoke ID`: the api_keys of Open311 client applications.

`create` prints the new key once (its last line is the key alone, for scripts); only its digest is stored.
`revoke` stops a key at once. The admin (Open311 接入应用) does the same.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hotline.errors import ApplicationError
from ticketing.calendar import TZ
from ticketing.models import Open311Client
from ticketing.open311_services import open311_client_create, open311_client_deactivate


class Command(BaseCommand):
    help = "Open311 接入密钥：create NAME 新建并显示密钥（只显示一次），list 列出，revoke ID 停用。"

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="为接入应用新建密钥")
        create.add_argument("name", help="接入应用的名称，例如 某某市民 App")
        actions.add_parser("list", help="列出接入应用（不显示密钥）")
        revoke = actions.add_parser("revoke", help="停用接入应用的密钥")
        revoke.add_argument("client_id", type=int)

    def handle(self, *args: object, **options: object) -> None:
        try:
            if options["action"] == "create":
                client, key = open311_client_create(name=str(options["name"]))
                self.stderr.write(f"已为「{client.name}」（编号 {client.id}）创建 Open311 接入密钥，只显示这一次：")
                self.stdout.write(key)
            elif options["action"] == "revoke":
                client_id = options["client_id"]
                assert isinstance(client_id, int)
                client = open311_client_deactivate(client_id=client_id)
                self.stdout.write(f"已停用「{client.name}」（编号 {client.id}）的密钥。")
            else:
                for client in Open311Client.objects.order_by("id"):
                    used = (
                        client.last_used_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
                        if client.last_used_at
                        else "未使用"
                    )
                    state = "启用" if client.is_active else "停用"
                    self.stdout.write(f"{client.id}\t{client.name}\t{state}\t最近使用：{used}")
        except ApplicationError as error:
            raise CommandError(error.message) from None
