"""The grid registry: buildings, households, residents and their life events, special-population
flags and their visit schedules, import and export, the demo households.

    rules       ID number and phone checks, who may see and change a resident, the event history
    households  buildings, households, residents: births, deaths, moves, transfers, corrections
    visits      special-population flags, visit schedules, the engine listener, `install(svc)`
    pages       "my grid", household and resident pages, resident search, the audited reveal
    reader      the import format: reading CSV/XLSX, header mapping, row validation
    writer      `import_file`: the two passes and the bulk writer
    export      `export_rows`, `export_file` and the export audit
    models, demo

May import `engine` and `grid.org`; from `grid.cases` only `grid.cases.service.report`, the one
way a visit opens a dispute case (checked by tests/test_layers.py). A resident's dispute cases
are `grid.cases.parties`'s.
"""
