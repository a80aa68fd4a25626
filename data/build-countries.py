#!/usr/bin/env python3
"""Rebuild data/countries.csv from public reference files.

Maintainer tool only: Coherence never runs it. Usage:
    python3 data/build-countries.py REFERENCE_DIR > data/countries.csv
REFERENCE_DIR holds UNSD-m49-{en,fr,es}.csv, country-codes-with-developed-column.csv and
worldbank-{historical-income-classification,class-2023}.xlsx (see data/README.md for sources).
Needs openpyxl.
"""
import csv, sys, os
import openpyxl

ref = sys.argv[1]
LDC_2008_EXTRA = {"BTN", "VUT", "GNQ", "WSM", "MDV"}  # graduated 2011-2023
NOT_LDC_2008 = {"SSD"}  # independent in 2011

def m49(lang):
    with open(os.path.join(ref, f"UNSD-m49-{lang}.csv"), encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    out = {}
    for r in rows[1:]:
        d = dict(zip(range(len(r)), r))
        iso3 = r[11]
        if iso3:
            out[iso3] = r
    return out

en, fr, es = m49("en"), m49("fr"), m49("es")

developed = {}
with open(os.path.join(ref, "country-codes-with-developed-column.csv"), encoding="utf-8") as f:
    for r in csv.DictReader(f):
        if r["ISO3166-1-Alpha-3"]:
            developed[r["ISO3166-1-Alpha-3"]] = r["Developed / Developing Countries"].strip().lower()

wb = openpyxl.load_workbook(os.path.join(ref, "worldbank-historical-income-classification.xlsx"), read_only=True)
fy09 = {}
for i, row in enumerate(wb["Country Analytical History"].iter_rows(values_only=True)):
    if i == 4:
        col = row.index("FY09")
    if i > 10 and row[0]:
        v = (row[col] or "").strip()
        fy09[row[0]] = v if v in ("L", "LM", "UM", "H") else ""

codes = {"Low income": "L", "Lower middle income": "LM", "Upper middle income": "UM", "High income": "H"}
wb = openpyxl.load_workbook(os.path.join(ref, "worldbank-class-2023.xlsx"), read_only=True)
fy23 = {}
for i, row in enumerate(wb["List of economies"].iter_rows(values_only=True)):
    if i > 0 and row[1]:
        fy23[row[1]] = codes.get(row[3] or "", "")

w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["iso3", "iso2", "m49", "name_en", "name_fr", "name_es",
            "region_code", "region_en", "region_fr", "region_es",
            "subregion_code", "subregion_en", "subregion_fr", "subregion_es",
            "intermediate_code", "intermediate_en", "intermediate_fr", "intermediate_es",
            "development", "ldc", "ldc_2008", "lldc", "sids", "income_fy09", "income_fy23"])
for iso3 in sorted(en):
    e, f_, s = en[iso3], fr.get(iso3, en[iso3]), es.get(iso3, en[iso3])
    if not e[2]:  # Antarctica has no region
        continue
    ldc = e[12].strip().lower() == "x"
    ldc08 = (ldc or iso3 in LDC_2008_EXTRA) and iso3 not in NOT_LDC_2008
    w.writerow([iso3, e[10], e[9], e[8], f_[8], s[8],
                e[2], e[3], f_[3], s[3], e[4], e[5], f_[5], s[5], e[6], e[7], f_[7], s[7],
                developed.get(iso3, ""), int(ldc), int(ldc08),
                int(e[13].strip().lower() == "x"), int(e[14].strip().lower() == "x"),
                fy09.get(iso3, ""), fy23.get(iso3, "")])
