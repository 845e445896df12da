from shop_users.main import serve

serve()
