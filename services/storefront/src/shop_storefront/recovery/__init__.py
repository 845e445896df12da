"""The live recovery page (`/recovery`, operator only): every replica of every service with its probes, memory
against its limit and restarts, the checkout rate, the database, and a timeline of what happened.

Where the replicas are comes from a `Source` (`sources`): make run's launcher state, the cluster's API, or the
services' own names (compose). `watch` asks every replica what the kubelet asks it (`/ready`, `/healthz`) and
reads its `/metrics`, only while someone is looking: a snapshot is taken when the page asks for one, at most about
once a second, and no background task runs while nobody looks.
"""
