"""What an uploaded file really is, read from its bytes: the handling API's attachments and the citizens'
photos (public site) are both checked here, never by the type the client declared."""

import io
import zipfile

from hotline.errors import ApplicationError

OOXML_PARTS = {
    "word/document.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
OLE_TYPES = {".doc": "application/msword", ".xls": "application/vnd.ms-excel"}
# Declared types whose bytes have a signature: a file that claims one of them must show it.
SIGNED_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "application/pdf",
        "audio/wav",
        "audio/mpeg",
        "application/msword",
        "application/vnd.ms-excel",
        *OOXML_PARTS.values(),
    }
)
TYPE_NAMES = {"image": "图片", "application/pdf": "PDF 文档", "audio": "音频", "text/plain": "文本"}


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # Names only: nothing is decompressed.
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError):
        return "application/zip"
    return next((kind for part, kind in OOXML_PARTS.items() if part in names), "application/zip")


def _signature_type(data: bytes, *, declared: str, name: str) -> str | None:
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # Word and Excel 97 share one container; which one it is needs the declared type or the name.
        if declared in OLE_TYPES.values():
            return declared
        return OLE_TYPES.get(_extension(name), "application/x-ole-storage")
    return None


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def _type_name(content_type: str) -> str:
    return TYPE_NAMES.get(content_type) or TYPE_NAMES.get(content_type.split("/")[0]) or content_type


def sniffed_content_type(data: bytes, *, declared: str, name: str) -> str:
    """The type to store for an upload, taken from its bytes wherever they tell (images, PDF, audio, Office
    files), not from what the client declared. A file that claims a type it does not have is refused; bytes
    that tell nothing are text only when they decode as text, and otherwise keep the declared type, which
    the service then checks against the allowed list."""
    declared = (declared or "").split(";")[0].strip().lower()
    found = _signature_type(data, declared=declared, name=name)
    if found is not None:
        return found
    if declared == "text/plain" or _extension(name) == ".txt":
        if _is_text(data):
            return "text/plain"
        raise ApplicationError(
            "文件内容不是文本，与声明的类型不符。", code="file_content_mismatch", extra={"field": "file"}
        )
    if declared in SIGNED_TYPES:
        raise ApplicationError(
            f"文件内容与声明的类型（{_type_name(declared)}）不符，请检查文件是否损坏或扩展名是否正确。",
            code="file_content_mismatch",
            extra={"field": "file", "content_type": declared},
        )
    return declared or "application/octet-stream"
