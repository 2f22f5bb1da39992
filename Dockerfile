# ringkv node and operator image: `ringkv node` (default) or `ringkv operator`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY node ./node
COPY operator ./operator
COPY test ./test
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN ln -s /app/dist/node/cli/main.js /usr/local/bin/ringkv && chmod +x /app/dist/node/cli/main.js \
  && mkdir -p /var/lib/ringkv && chown node:node /var/lib/ringkv
USER node
EXPOSE 8080 7000
VOLUME /var/lib/ringkv
ENTRYPOINT ["node", "/app/dist/node/cli/main.js"]
CMD ["node", "--data-dir", "/var/lib/ringkv"]
