// grpckit admin page
