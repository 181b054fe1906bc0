"""Money on the wire: `{"amount": 1999, "currency": "EUR"}`, integer minor units and
an ISO 4217 code. Never floats."""

from __future__ import annotations

from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from orderdesk.core.schemas import INTEGRAL, STRICT
from orderdesk.core.text import SINGLE_LINE

MAX_AMOUNT = 10**12  # minor units; keeps sums far inside a 64-bit integer


def _iso_4217(code: str) -> str:
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code")
    return code


# Listed in the document, so clients (and generated test data) know the codes.
ISO_4217_CODES = sorted(currency.alpha_3 for currency in pycountry.currencies)

CurrencyCode = Annotated[
    str,
    Field(
        min_length=3,
        max_length=3,
        pattern=r"^[A-Z]{3}$",
        json_schema_extra={"enum": ISO_4217_CODES},
    ),
    SINGLE_LINE,
    AfterValidator(_iso_4217),
]


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Annotated[
        int,
        Field(ge=0, le=MAX_AMOUNT, description="Minor units (cents for EUR)."),
        STRICT,
        INTEGRAL,
    ]
    currency: CurrencyCode
