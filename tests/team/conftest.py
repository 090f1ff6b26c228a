"""Team mode's servers, started for real on loopback for the tests (Debian's PostgreSQL, Chroma's own
server, llama.cpp's OpenAI-compatible server): each in its own module, its fixtures gathered here."""

from tests.output.conftest import secret_service  # noqa: F401
from tests.team.chroma_server import chroma_server, run_chroma  # noqa: F401
from tests.team.llm_server import llm_server, llm_server_model, start_llama_server  # noqa: F401
from tests.team.postgres_server import postgres_dsn, postgres_server  # noqa: F401
