-- One role and one database per service, created when missing; the role's password follows the Secret.
-- psql variables: `role`, `password`, and optionally `database` (default: the role's name) and `template` (a
-- database to copy when creating it: the tests' per-test clones). Run once per service by provision.sh (the
-- StatefulSet, and docker compose with --once) and shop_devtools.provision (make run, the bench, the container
-- proof, the tests): the one provisioning script.
\if :{?database}
\else
  \set database :role
\endif
\if :{?template}
\else
  \set template ''
\endif

SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec

SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'password') \gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
  || CASE WHEN :'template' = '' THEN '' ELSE format(' TEMPLATE %I STRATEGY FILE_COPY', :'template') END
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec

-- Each service's role reaches its own database only.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'database') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'database', :'role') \gexec
