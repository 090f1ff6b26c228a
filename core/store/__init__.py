"""What Sealroom keeps: the catalog (files, passages, keyword index, chats, answers) and the vector index."""
