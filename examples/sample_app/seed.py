"""Demo data for the sample app (`invoke db.reset` runs it after migrating)."""

from app.models import SampleFile, SampleSession, SampleUser
from app.settings import database_url
from sqlalchemy import create_engine
from sqlalchemy.orm import Session


def main() -> None:
    engine = create_engine(database_url())
    with Session(engine) as session, session.begin():
        alice = SampleUser(email="alice@example.com", username="alice", hashed_password="!")
        alice.sessions.append(SampleSession(session_id="demo-session-1", title="First chat"))
        alice.files.append(
            SampleFile(
                filename="notes.txt",
                content_type="text/plain",
                size=12,
                storage_path="uploads/alice/notes.txt",
            )
        )
        session.add(alice)
    print("seeded: 1 user, 1 session, 1 file")


if __name__ == "__main__":
    main()
