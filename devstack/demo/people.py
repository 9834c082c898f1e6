"""Made-up people for the demo: valid-looking national IDs and mobile numbers, never real."""

from __future__ import annotations

import random
from datetime import date, timedelta

from shared.privacy import check_char

NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周婷", "吴军"]


def national_id(rng: random.Random) -> str:
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 70))
    first17 = f"{rng.randint(11, 65)}{rng.randrange(10_000):04d}{birth:%Y%m%d}"
    first17 += f"{rng.randrange(1000):03d}"
    return first17 + check_char(first17)


def phone(rng: random.Random) -> str:
    return f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}"
