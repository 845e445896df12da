from shop_payment.models import Base
from shopkit import run_env

run_env(Base.metadata)
