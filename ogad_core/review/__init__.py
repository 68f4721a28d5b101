"""Review decisions (SQLite, WAL) and the export of the cleaned dataset index. Torch-free."""
