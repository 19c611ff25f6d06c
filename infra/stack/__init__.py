"""Local stand-ins for the cloud services, shared by `make dev` and the integration tests.

    postgres.PostgresServer       Cloud SQL      PostgreSQL 16 + pgvector (pgserver wheel) on 127.0.0.1 TCP
    firestore.FirestoreEmulator   Firestore      the gcloud SDK's Firestore emulator (JVM)
    storage.StorageEmulator       Cloud Storage  gcp-storage-emulator in-process + an Eventarc bridge (CloudEvents)
    tasks.TasksEmulator           Cloud Tasks    gcloud-tasks-emulator from its own venv (.venv-tasks)
    processes                     free ports, readiness waits, process groups that stop cleanly

Each service has `start()` (idempotent; returns once *its own* process answers), `stop()` (leaves nothing running),
`env()` (the variables a client needs) and context-manager support. Import the module you need: importing this
package loads none of them.
"""
