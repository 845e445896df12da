from shop_users.models import Base
from shopkit import run_env

run_env(Base.metadata)
