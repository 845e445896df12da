-- One role and one database per service, created when missing; the role's password follows the Secret.
-- psql variables: `role` (also the database's name) and `password`. Run by provision.sh, once per service.
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec

SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'password') \gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'role') \gexec

-- Each service's role reaches its own database only.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'role') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'role', :'role') \gexec
