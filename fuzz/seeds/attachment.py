#!/usr/bin/env python3
"""Writes fuzz/corpus/attachment/: one input per document type and a few hostile ones.

Input layout (see fuzz_targets/attachment.rs): a byte of accepted types (bit i = FileType::ALL[i]:
pdf docx xlsx odt ods csv png jpeg; 0 = all, 0xFF = too large), the name's length, the name,
the content. Run from fuzz/: python3 seeds/attachment.py
"""
import io
import os
import struct
import zipfile
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "corpus", "attachment")


def office(entries, stored_first=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if stored_first:
            z.writestr(zipfile.ZipInfo(stored_first[0]), stored_first[1], zipfile.ZIP_STORED)
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def png():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


CT = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
SEEDS = {
    "pdf": (0, "report.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"),
    "png": (1 << 6, "chart.PNG", png()),
    "jpeg": (1 << 7, "photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"),
    "csv": (1 << 5, "data.csv", "\ufeffcountry;value\r\nSWE;1,5\r\nFRA;\"a, b\"\r\n".encode()),
    "docx": (1 << 1, "law.docx", office([("[Content_Types].xml", CT), ("word/document.xml", b"<w:document/>")])),
    "xlsx": (1 << 2, "table.xlsx", office([("[Content_Types].xml", CT), ("xl/workbook.xml", b"<workbook/>")])),
    "odt": (1 << 3, "note.odt", office([("content.xml", b"<office:document-content/>")],
                                       ("mimetype", b"application/vnd.oasis.opendocument.text"))),
    "ods": (1 << 4, "sheet.ods", office([("content.xml", b"<office:document-content/>")],
                                        ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"))),
    "docm-renamed": (0, "law.docx", office([("[Content_Types].xml", CT), ("word/document.xml", b"<w:document/>"),
                                            ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0")])),
    "zip-slip": (0, "law.docx", office([("[Content_Types].xml", CT), ("word/document.xml", b"x"),
                                        ("../../etc/cron.d/x", b"* * * * * root sh")])),
    "html-as-csv": (1 << 5, "data.csv", b"<!DOCTYPE html><script>alert(1)</script>"),
    "pdf-named-xlsx": (0, "report.xlsx", b"%PDF-1.7\n"),
    "bidi-name": (0, "report\u202egpj.exe\u200f.pdf", b"%PDF-1.4\n"),
    "path-name": (0, "..\\..\\C:/Windows/\t\"evil\";.pdf", b"%PDF-1.4\n"),
    "long-name": (0, " . " + "\u00e9" * 120 + ".pdf", b"%PDF-1.4\n"),
    "too-large": (0xFF, "big.pdf", b"%PDF-1.4\n"),
}

os.makedirs(OUT, exist_ok=True)
for name, (flags, file_name, content) in SEEDS.items():
    raw = file_name.encode()[:255]
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([flags, len(raw)]) + raw + content)
