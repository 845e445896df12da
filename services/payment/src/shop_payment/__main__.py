from shop_payment.main import serve

serve()
