"""Reading a user's data folder: the data contract, mapping files, loading and rejects."""

from touchmodel.sources.loader import LoadedData, load_folder
from touchmodel.sources.mapping import ColumnMapping, Mapping, TableMapping, load_mapping
from touchmodel.sources.rejects import RejectReport

__all__ = [
    "ColumnMapping",
    "LoadedData",
    "Mapping",
    "RejectReport",
    "TableMapping",
    "load_folder",
    "load_mapping",
]
