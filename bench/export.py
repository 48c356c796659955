"""`coursereg export registrations` on a large semester: a scratch database filled by SQL
(50,000 students, 1,000 sections, five enrolled sections each: 250,000 registrations, and
10,000 places in line), then the command itself, timed, with its peak memory.

    python -m bench.export [--students N] [--format csv|jsonl]

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; this machine's by default). The scratch
database is dropped at the end."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from infrastructure.postgres.migrate import upgrade

SERVER = os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECTIONS = 1_000
PER_STUDENT = 5
WAITING = 10_000

FILL = """
INSERT INTO semesters (semester_id, semester_name, start_date, end_date,
                       registration_start, registration_end)
VALUES ($1, 'Fall 2026', '2026-09-01', '2026-12-20', now() - interval '1 day',
        now() + interval '30 days');
INSERT INTO courses (course_code, course_name)
SELECT 'C' || lpad(i::text, 5, '0'), 'Course ' || i FROM generate_series(1, {sections}) i;
INSERT INTO sections (course_id, semester_id, section_number, total_seats)
SELECT course_id, $1, '001', 1000 FROM courses;
INSERT INTO students (student_number, first_name, last_name, email)
SELECT 'S' || lpad(i::text, 8, '0'), 'Ada', 'Lovelace', 's' || i || '@uni.edu'
FROM generate_series(1, {students}) i;
"""

ENROL = """
WITH st AS (SELECT student_id, row_number() OVER (ORDER BY student_number) AS n FROM students),
     se AS (SELECT section_id, row_number() OVER (ORDER BY section_id) - 1 AS k FROM sections)
INSERT INTO registrations (semester_id, student_id, section_id, registration_date)
SELECT $1, st.student_id, se.section_id, now()
FROM st CROSS JOIN generate_series(0, {per} - 1) j
JOIN se ON se.k = (st.n * {per} + j) % {sections}
"""

LINE = """
WITH st AS (SELECT student_id, row_number() OVER (ORDER BY student_number) AS n FROM students),
     se AS (SELECT section_id, row_number() OVER (ORDER BY section_id) - 1 AS k FROM sections)
INSERT INTO waitlist (student_id, section_id, position)
SELECT st.student_id, se.section_id, st.n
FROM st JOIN se ON se.k = (st.n * {per} + {per}) % {sections}
WHERE st.n <= {waiting}
"""


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=50_000)
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    return p.parse_args()


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def fill(url: str, semester: uuid.UUID, students: int) -> int:
    connection = await asyncpg.connect(url)
    try:
        sizes = {"sections": SECTIONS, "students": students, "per": PER_STUDENT}
        async with connection.transaction():
            for statement in FILL.format(**sizes).split(";\n"):
                if statement.strip():
                    await connection.execute(statement, *([semester] if "$1" in statement else []))
            await connection.execute(ENROL.format(**sizes), semester)
            await connection.execute(LINE.format(**sizes, waiting=min(WAITING, students)))
        await connection.execute("ANALYZE")
        count = await connection.fetchval("SELECT count(*) FROM registrations")
        return int(count) + int(await connection.fetchval("SELECT count(*) FROM waitlist"))
    finally:
        await connection.close()


async def main() -> None:
    args = parse()
    name = f"bench_export_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(SERVER)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(SERVER, name)
    try:
        await asyncio.to_thread(upgrade, url.replace("postgresql://", "postgresql+asyncpg://", 1))
        semester = uuid.uuid4()
        started = time.perf_counter()
        rows = await fill(url, semester, args.students)
        print(f"filled {rows:,} records in {time.perf_counter() - started:.1f}s", flush=True)
        with tempfile.TemporaryDirectory() as work:
            target = Path(work) / f"registrations.{args.format}"
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "REDIS_URL": REDIS,
                "COURSEREG_KEY_PREFIX": f"bx{uuid.uuid4().hex[:8]}:",
            }
            command = [sys.executable, "-m", "infrastructure.cli", "export", "registrations"]
            command += ["--semester", str(semester), "--format", args.format]
            command += ["--output", str(target)]
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            lines = sum(1 for _ in target.open())
            size = target.stat().st_size / 1e6
            print(
                f"export {args.format}: {lines - (args.format == 'csv'):,} records, "
                f"{size:.1f} MB in {seconds:.2f}s ({(lines / seconds):,.0f} records/s), "
                f"peak RSS {peak:.0f} MB; {done.stderr.strip()}"
            )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
