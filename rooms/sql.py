"""Helpers for the statements every join and leave runs, written in plain SQL rather
than built by the ORM (the statements are in rooms/services.py).

Building and compiling a queryset costs far more Python than the statement costs
PostgreSQL to run (a peers list: 0.81 ms through the ORM, 0.32 ms as the
same SELECT in plain SQL; the INSERT of a seat 0.56 ms against 0.44), and a worker's joins
queue behind that Python (docs/performance.md, "The start of the hour, third pass").
Everything else keeps the ORM. Only table and column names from the models are formatted
into the SQL; every value is a parameter. Tests compare each one with its ORM twin.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


@functools.cache
def _insert_sql(model: type[Model]) -> tuple[str, tuple[Field[Any, Any], ...]]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    pk = connection.ops.quote_name(meta.pk.column)
    return (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns})"  # noqa: S608
        f" VALUES ({marks}) RETURNING {pk}",
        fields,
    )


def insert(obj: M) -> M:
    """Save a new row of a model with an automatic primary key, as obj.save() would
    (defaults are the instance's, values prepared by their fields), in one statement."""
    sql, fields = _insert_sql(type(obj))
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        (obj.pk,) = cursor.fetchone()
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def converter(model: type[Model], name: str) -> Callable[[Any], Any]:
    """What the ORM does to a value of `model.name` read from the database (SQLite hands
    back a datetime as text, for one): for values read in plain SQL."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    column = field.get_col(model._meta.db_table)
    steps = connection.ops.get_db_converters(column) + column.get_db_converters(connection)

    def convert(value: Any) -> Any:
        for step in steps:
            value = step(value, column, connection)
        return value

    return convert


def rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
