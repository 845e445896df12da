-- One service's role and database, created when missing and left alone otherwise (the role's password is set
-- again, so a changed password takes effect). psql variables: role, password, database.
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec

ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database')
\gexec

-- Each service reaches its own database only.
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT ALL ON DATABASE :"database" TO :"role";
